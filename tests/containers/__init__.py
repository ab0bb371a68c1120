"""`make test-containers`: the images, docker-compose.yml and the Kubernetes overlays, tried
as a user would (see __main__.py). Not part of `make test`, which needs no Docker."""
