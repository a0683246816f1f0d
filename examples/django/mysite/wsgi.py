"""
WSGI config for mysite project.

It exposes the WSGI callable as a module-level variable named ``application``.
Run it with threads, e.g. ``gunicorn mysite.wsgi --worker-class gthread --threads 8``.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
