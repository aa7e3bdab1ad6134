"""The loop's reference server (a package only so that type checkers tell the main.py files apart)."""
