"""hone.models"""
