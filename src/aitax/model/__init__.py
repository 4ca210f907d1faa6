"""The run model: what a run measured, as saved in `run.json`."""
