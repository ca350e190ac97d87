"""Certification core; see ``bot.certification.gate.holds_level`` for the one gate function."""
