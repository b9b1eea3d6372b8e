"""One blueprint per screen or API family."""
