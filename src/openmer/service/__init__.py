"""``openmer serve``: a local HTTP service and a review page (``docs/service.md``).

- :mod:`~openmer.service.app`: the FastAPI application (:func:`create_app`, :class:`ServiceConfig`);
- :mod:`~openmer.service.store`: jobs, results and reviews in SQLite under ``--data-dir``;
- :mod:`~openmer.service.jobs`: the bounded worker pool and the timeline jobs;
- :mod:`~openmer.service.uploads`: uploads streamed to a private folder, checked by decoding;
- ``static/``: the review page (plain HTML, CSS and JavaScript; nothing is fetched from elsewhere).
"""

from openmer.service.app import ServiceConfig, create_app

__all__ = ["ServiceConfig", "create_app"]
