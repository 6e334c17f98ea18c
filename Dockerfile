FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY service service
COPY projections projections
RUN pip install --no-cache-dir '.[postgres]'
EXPOSE 8080
CMD ["returnflow", "serve", "--host", "0.0.0.0"]
