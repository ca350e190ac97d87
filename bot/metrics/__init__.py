"""Execution metrics: records, the store with its rollups, aggregation, alerts, reports.

Pure core: plain data in, decisions out; no network, no Flask, no PyGithub.
"""
