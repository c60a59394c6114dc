"""Evaluation harness: medical benchmark ladders and HealthBench, run on any model Terminus reaches."""
