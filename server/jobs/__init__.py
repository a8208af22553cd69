"""Long work off the request: jobs that run on the job queue (Huey) with progress, and their results."""
