"""Capture: run the target in separate passes and save what each pass measured."""
