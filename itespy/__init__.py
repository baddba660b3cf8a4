"""itespy: a teaching and reproduction kit for ITES (Invariant Teacher and Equivariant Student, AAAI 2021)."""
__version__ = "0.1.0"
