"""credit-batch: nightly batch prediction of credit risk.

The package holds all logic; the Airflow DAGs in ``dags/`` and the
``credit-batch`` command only call :mod:`credit_batch.pipeline`.
Importing the package is cheap: heavy libraries load inside functions.
"""

__version__ = "0.1.0"
