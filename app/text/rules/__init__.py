"""Rewrite rules: each is a function `(text, reader) -> text` that speaks one kind of written token."""
