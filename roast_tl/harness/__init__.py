"""The harness around the pipeline: baselines, sweeps, the demo, the CLI and plots.

Nothing in the pipeline modules imports from here.
"""
