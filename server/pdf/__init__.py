"""PDF rendering (WeasyPrint) behind a URL fetcher that reaches nothing outside the document."""
