"""What training and inference share below both: checkpoint files and device/process-group handling.

A neutral layer, so that inference loads a run's weights without importing training.
"""
