"""hone.agent"""
