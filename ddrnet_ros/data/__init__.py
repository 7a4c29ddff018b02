"""Data sources for training and evaluation: synthetic scenes, bags, dataset layouts."""
