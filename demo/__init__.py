"""The end-to-end scenario shared by `make demo` and the walking-skeleton test."""
