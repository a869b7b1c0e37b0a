"""Autoscaling signals: rendering and smoothing."""
