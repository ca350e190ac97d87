"""CVF Governance: a GitHub-native governance bot and Action."""

__version__ = "0.1.0"
