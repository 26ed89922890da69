"""hone.server"""
