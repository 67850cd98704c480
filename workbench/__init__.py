"""CIFAR Workbench: train, compare, ensemble and inspect CIFAR classifiers from one process."""

__version__ = "0.1.0"
