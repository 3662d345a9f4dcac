"""Timing headlab against a plain PyTorch loop; outside the installed package on purpose."""
