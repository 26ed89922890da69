"""Tree-sitter queries of the repair loop, one file per language and purpose."""
