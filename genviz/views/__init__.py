"""Views: what a family shows (`layers`, plain data) and the one module that draws it (`render`)."""
