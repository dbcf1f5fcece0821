//! Streaming masking: output arrives in arbitrary chunks (SSH, `kubectl logs -f`, COPY), and a secret split
//! across two chunks must still be masked.
//!
//! Approach: hold back the unfinished tail and emit only text whose masking can no longer change.
//! * Every detector except PEM private keys is line-local (see [`super::detect`]), so everything up to the
//!   last `\n` is final: it is masked exactly as [`Masker::mask_text`] would mask the whole stream, and
//!   only the last partial line is held.
//! * A private-key BEGIN without its END is held (from the BEGIN line on) until the END arrives, so the
//!   whole block is replaced, up to [`STREAM_PEM_MAX`]. A longer block is replaced by `[PRIVATE_KEY]` at
//!   once and everything up to its END line is dropped (the stream cannot hold it, and it is key material).
//! * A line longer than [`STREAM_MAX_HELD`] (minified JSON, a base64 blob, a 50 MB line with no newline)
//!   is cut inside the line: at a space or tab at least [`STREAM_TAIL`] bytes before the end, never inside
//!   a finding or its evidence (`password=` … value), nor inside a credential. A secret of up to
//!   `STREAM_TAIL` bytes that is still arriving therefore always stays in the held part.
//!
//! Bound: after [`MaskStream::push`] returns, [`MaskStream::held_bytes`] ≤ [`STREAM_MAX_HELD`] (64 KiB);
//! while a chunk is being processed the chunk itself is in memory too.

use super::detect::Hit;
use super::secrets::{self, MAX_PEM_MARKER};
use super::{Detector, MaskCounts, Masker};

/// Most bytes a stream holds back between two `push` calls.
pub const STREAM_MAX_HELD: usize = 64 * 1024;
/// Longest private key block held until its END line (larger ones are dropped whole, see module docs).
pub const STREAM_PEM_MAX: usize = 16 * 1024;
/// When a line must be cut, at least this much of its end stays held (longest secret safe across a cut).
pub const STREAM_TAIL: usize = 16 * 1024;

/// One output stream being masked; see the module docs. Create with [`Masker::stream`].
pub struct MaskStream<'m> {
    masker: &'m Masker,
    pending: String,
    /// Inside a private key block whose placeholder was already emitted: drop input until its END marker.
    discarding: bool,
}

impl<'m> MaskStream<'m> {
    pub(crate) fn new(masker: &'m Masker) -> Self {
        MaskStream { masker, pending: String::new(), discarding: false }
    }

    /// Bytes currently held back (never more than [`STREAM_MAX_HELD`] after `push` returns).
    pub fn held_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Feeds a chunk; returns the masked text that is safe to emit now.
    pub fn push(&mut self, chunk: &str, counts: &mut MaskCounts) -> String {
        self.pending.push_str(chunk);
        let mut out = String::new();
        self.drain(false, &mut out, counts);
        out
    }

    /// Ends the stream: masks and returns everything still held.
    pub fn finish(mut self, counts: &mut MaskCounts) -> String {
        let mut out = String::new();
        self.drain(true, &mut out, counts);
        out
    }

    fn drain(&mut self, finished: bool, out: &mut String, counts: &mut MaskCounts) {
        loop {
            if self.discarding {
                match secrets::pem_end(&self.pending) {
                    Some(end) => {
                        self.pending.drain(..end);
                        self.discarding = false;
                    }
                    None => {
                        // Keep only enough to recognise an END marker split across chunks.
                        let keep = if finished {
                            self.pending.len()
                        } else {
                            self.pending.len().saturating_sub(MAX_PEM_MARKER)
                        };
                        let keep = floor_boundary(&self.pending, keep);
                        self.pending.drain(..keep);
                        return;
                    }
                }
            }
            if finished {
                out.push_str(&self.masker.mask_text(&self.pending, counts));
                self.pending.clear();
                return;
            }
            let len = self.pending.len();
            let mut cut = memchr::memrchr(b'\n', self.pending.as_bytes()).map_or(0, |i| i + 1);
            if self.masker.is_enabled(Detector::PrivateKey) {
                let blocks = secrets::pem_blocks(self.masker.detectors(), &self.pending);
                // At most the last block can be unterminated (an unterminated block runs to the end).
                if let Some(&(begin, _, false)) = blocks.last()
                    && len - begin > STREAM_PEM_MAX
                {
                    out.push_str(&self.masker.mask_text(&self.pending[..begin], counts));
                    out.push_str(Detector::PrivateKey.redaction());
                    counts.add(Detector::PrivateKey.as_str(), 1);
                    self.pending.drain(..begin);
                    self.discarding = true;
                    continue;
                }
                // Never cut inside a block: hold it from its BEGIN (a complete block whose END line is not
                // finished yet is held too, so its END marker is masked with it).
                if let Some(&(begin, _, _)) = blocks.iter().find(|&&(s, e, done)| s < cut && (cut < e || !done)) {
                    cut = begin;
                }
            }
            if len - cut > STREAM_MAX_HELD {
                cut = self.forced_cut(cut);
            }
            if cut > 0 {
                out.push_str(&self.masker.mask_text(&self.pending[..cut], counts));
                self.pending.drain(..cut);
            }
            return;
        }
    }

    /// A cut inside an over-long last line: in `[len - MAX_HELD, len - TAIL]`, right after a space or tab,
    /// outside every finding (with its evidence) and credential occurrence. If there is no such place (a
    /// 48 KiB run without blanks), cut at `len - TAIL`, moved past any finding that straddles it.
    fn forced_cut(&self, line_start: usize) -> usize {
        let p = &self.pending;
        let len = p.len();
        let lo = line_start.max(len - STREAM_MAX_HELD);
        let hi = len - STREAM_TAIL;
        // Findings that could straddle the window start at most STREAM_TAIL before it.
        let base = floor_boundary(p, lo.saturating_sub(STREAM_TAIL).max(line_start));
        let region = &p[base..];
        let mut blocked: Vec<(usize, usize)> =
            self.masker.hits(region).iter().map(|h: &Hit| (base + h.ctx, base + h.end)).collect();
        blocked.extend(self.masker.scrubber().spans(region).into_iter().map(|(s, e)| (base + s, base + e)));
        let inside = |q: usize| blocked.iter().any(|&(s, e)| s < q && q < e);
        let bytes = p.as_bytes();
        let mut q = hi;
        while q > lo {
            if matches!(bytes[q - 1], b' ' | b'\t') && !inside(q) {
                return q;
            }
            q -= 1;
        }
        let mut q = floor_boundary(p, hi);
        while let Some(&(_, e)) = blocked.iter().find(|&&(s, e)| s < q && q < e) {
            q = e;
        }
        q
    }
}

/// Largest char boundary ≤ `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
