from django.urls import path

from . import views

app_name = "llm_api"

urlpatterns = [
    path("complete/", views.complete, name="complete"),
    path("stream/", views.stream, name="stream"),
    path("orders/", views.orders, name="orders"),
]
