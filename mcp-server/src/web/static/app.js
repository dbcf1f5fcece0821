// Airlock web UI: terminal playback for recorded SSH / kube output. Served from /static (the CSP allows no
// inline script). Recorded text is untrusted: it is only ever written with textContent, never parsed as HTML.
"use strict";

function setupPlayer(root) {
  let frames;
  try {
    frames = JSON.parse(root.dataset.frames || "[]");
  } catch (e) {
    frames = [];
  }
  // frames: [[ms since the command started, "stdout" | "stderr", text], ...]
  const terminal = root.querySelector(".terminal");
  const play = root.querySelector(".play");
  const speed = root.querySelector(".speed");
  const seek = root.querySelector(".seek");
  const clock = root.querySelector(".clock");
  const total = frames.length ? Math.max(1, frames[frames.length - 1][0]) : 1;
  let position = total; // start fully rendered; Play restarts from the beginning
  let timer = null;
  let last = 0;

  function render() {
    let text = "";
    for (const f of frames) {
      if (f[0] > position) break;
      text += f[2];
    }
    terminal.textContent = text;
    terminal.scrollTop = terminal.scrollHeight;
    seek.value = String(Math.round((position / total) * 1000));
    clock.textContent = (position / 1000).toFixed(1) + " s / " + (total / 1000).toFixed(1) + " s";
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.textContent = "Play";
  }

  function tick() {
    const now = performance.now();
    position += (now - last) * Number(speed.value || "1");
    last = now;
    if (position >= total) {
      position = total;
      stop();
    }
    render();
  }

  play.addEventListener("click", function () {
    if (timer !== null) {
      stop();
      return;
    }
    if (position >= total) position = 0;
    last = performance.now();
    timer = setInterval(tick, 30);
    play.textContent = "Pause";
  });
  seek.addEventListener("input", function () {
    position = (Number(seek.value) / 1000) * total;
    last = performance.now();
    render();
  });
  render();
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".player[data-frames]").forEach(setupPlayer);
});
