"""Scripts that make the repository's static files (thumbnails); run with `python -m scripts.<name>`."""
