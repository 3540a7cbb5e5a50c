# As scrapyd-deploy writes it for a project without one.
from setuptools import find_packages, setup

setup(
    name="demo",
    version="1.0",
    packages=find_packages(),
    entry_points={"scrapy": ["settings = demo_spiders.settings"]},
)
