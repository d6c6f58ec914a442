# Airflow with this provider installed, for docker-compose.yaml.
# The triggerer imports the trigger by its class path, so the package must be installed in the image:
# a module in the dags folder is not importable there.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# Build from a scratch copy owned by the airflow user: pip and setuptools write build files beside it.
# The directory is made by that user first: WORKDIR alone makes it root's with Docker's classic builder
# (Debian's docker-compose 1.29 builds with it), and setuptools then cannot write its egg-info there.
USER airflow
RUN mkdir /tmp/airflow-lambda-deferrable
WORKDIR /tmp/airflow-lambda-deferrable
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 airflow_lambda_deferrable/ ./airflow_lambda_deferrable/

# "[local-aws]" adds what the optional local AWS stack service needs (see docker-compose.yaml).
ARG PROJECT_EXTRAS=""
# Naming the image's own Airflow version keeps pip from upgrading or downgrading Airflow itself.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" ".${PROJECT_EXTRAS}" \
 && rm -rf /tmp/airflow-lambda-deferrable

WORKDIR /opt/airflow
