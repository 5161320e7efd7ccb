"""Tally's load-generation code: vote inputs for the Locust user classes and the run report."""
