"""The REST API: Flask app factory, blueprints, schemas and services."""
