"""URL configuration for mysite project: the admin, as startproject made it, and the LLM API."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("llm/", include("llm_api.urls")),
]
