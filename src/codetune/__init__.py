"""codetune: which instruction data makes a better small code model?"""

__version__ = "0.1.0"
