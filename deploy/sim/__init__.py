"""ScrapeMaster over several simulated hosts (network namespaces): `python -m deploy.sim`."""
