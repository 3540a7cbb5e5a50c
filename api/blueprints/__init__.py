"""HTTP resources, one flask-smorest blueprint per area of API.md."""
