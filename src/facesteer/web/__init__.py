"""The browser editor (``facesteer serve``)."""
