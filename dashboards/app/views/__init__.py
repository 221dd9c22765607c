"""The app's pages; each exposes ``render(url, route)``."""
