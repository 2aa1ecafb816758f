"""Rewrite rules: each is a function `(text, reader) -> text` that speaks one kind of written token."""

import re

has_digit = re.compile(r"[0-9]").search
