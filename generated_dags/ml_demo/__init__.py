"""Example training callables for the demo pipelines in configs/."""
