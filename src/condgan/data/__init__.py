"""Datasets: by name ('fashion-mnist', 'mnist') or path, all as an in-memory ImageSet."""

from .imageset import ImageSet, resolve_class, to_float, to_uint8
from .mnist import FASHION_MNIST_CLASSES
from .registry import load_dataset

__all__ = ["ImageSet", "load_dataset", "resolve_class", "to_float", "to_uint8", "FASHION_MNIST_CLASSES"]
