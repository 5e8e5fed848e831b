"""Benchmarks of the authorization server and the sample API service: `python3 -m bench`."""
