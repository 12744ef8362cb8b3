"""The one exception a component raises to stay stock."""


class Stock(Exception):
    """Raised by a component hook to leave its component stock; the message says why."""
