"""Passwords never reach a file or a stream (placeholder: replaced by the secrets branch)."""
from __future__ import annotations

import re


def mask(text: str) -> str:
    """The text with every URL password replaced by ***."""
    text = re.sub(r"(:\\?//[^:/@\s\\]+\\?:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"([?&;](?:ssl)?password=)[^&\s'\"]*", r"\1***", text, flags=re.IGNORECASE)
