"""Checks shared by the Python client scripts: what any MCP client must see from Airlock."""

EMAIL = "ada.lovelace@example.com"
CARD = "4111111111111111"


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def check_tools(names, label):
    check({"sql_query", "list_connections"} <= set(names), f"{label}: tools {names}")


def check_select(is_error, text, structured, label):
    check(not is_error, f"{label}: select failed: {text}")
    check("Ada Lovelace" in text, f"{label}: name missing from text: {text}")
    check(EMAIL not in text and EMAIL not in str(structured), f"{label}: e-mail leaked: {text} {structured}")
    check(CARD not in text and CARD not in str(structured), f"{label}: card leaked: {text}")
    check(structured and structured.get("status") == "completed", f"{label}: structured {structured}")


def check_drop(is_error, text, structured, label):
    check(is_error, f"{label}: DROP not an error: {text}")
    check("block-destructive-ddl" in text, f"{label}: rule not named in text: {text}")
    check(structured and structured.get("status") == "blocked", f"{label}: structured {structured}")


def check_delete(is_error, text, label):
    check(is_error, f"{label}: DELETE without WHERE not refused: {text}")
    check("approve-unbounded-writes" in text, f"{label}: rule not named: {text}")


SELECT = "SELECT id, name, email, card_number FROM customers WHERE id = 1"
DROP = "DROP TABLE orders"
DELETE = "DELETE FROM orders"
