"""The loop's reference loader (a package only so that type checkers tell the two main.py apart)."""
