"""Analysis: pure functions from captured records to stage totals, hotspots and findings."""
