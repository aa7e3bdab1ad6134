"""The loop's reference trainer (a package only so that type checkers tell the two main.py apart)."""
