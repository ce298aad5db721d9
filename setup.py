"""Build hook: the wheel and the sdist carry the Alembic scripts and the user guide.

Everything else is in ``pyproject.toml``. The migrations stay in the top-level ``alembic/``
folder (where ``alembic.ini`` finds them in a checkout) and the guide in ``docs/``; setuptools
maps them into the installed package as ``hacs_persistence/_alembic`` and
``hacs_persistence/_guide``, where ``hacs_persistence.ops.resources`` finds them through
``importlib.resources``. One copy in git, one in the wheel. ``alembic/`` has no ``__init__.py``
on purpose: as a regular package it would shadow the ``alembic`` library from the checkout root.
"""

from setuptools import find_packages, setup

PACKAGED_FOLDERS = {
    "hacs_persistence._alembic": "alembic",
    "hacs_persistence._alembic.versions": "alembic/versions",
    "hacs_persistence._guide": "docs",
}

setup(
    packages=[*find_packages("hacs"), *PACKAGED_FOLDERS],
    package_dir={"": "hacs", **PACKAGED_FOLDERS},
)
