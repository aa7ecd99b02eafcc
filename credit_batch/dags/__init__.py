"""The pipeline's three workflows: nightly scoring, monthly training, daily monitoring.

This folder is the scheduler's: ``credit-batch dags-folder`` prints its path,
to set as ``AIRFLOW__CORE__DAGS_FOLDER``. Its files are parsed by path, not
imported as modules of this package.
"""
