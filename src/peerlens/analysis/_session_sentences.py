"""Sentences a PS worker might say in a session, by the kind the story model should find.

Written for peerlens's simulated demo trial (fictional; no dataset text). ``connection`` shares
experience and normalises ("me too", "many people feel this"); ``upward`` is the worker held up
as further ahead ("I beat it, so can you"), ``downward`` the person's difficulty made small
("at least you still have ..."); ``neutral`` is session business. Each sentence gets its
intended label from the packaged story model on its own (checked when the model changes).
"""

from __future__ import annotations

CONNECTION: tuple[str, ...] = (
    "I know that feeling, I went through something very like it myself.",
    "You are not the only one who feels this way.",
    "A lot of people in our group have said the same thing.",
    "I remember lying awake like that too, it is exhausting.",
    "When I was unwell I felt exactly that kind of shame.",
    "Many of us have had weeks where nothing seems to go right.",
    "It makes sense that you feel worn out, I felt the same after my own setbacks.",
    "I have been there, and it helped me to hear that others had too.",
    "We all struggle sometimes, that is part of being human.",
    "Plenty of people carry that worry quietly, you are not alone with it.",
    "I used to think I was the only one who got so anxious.",
    "I remember feeling that exact same way after I lost my job.",
    "Other people I have worked with describe that same heaviness.",
    "I felt like a failure for a long time as well.",
    "It is so common to feel cut off when things get bad.",
    "Honestly, I still have days like that myself.",
    "You are in good company, lots of us have been exactly where you are.",
    "I remember that fear of reaching out, I had it too.",
    "What you are describing is something I lived through as well.",
)

UPWARD: tuple[str, ...] = (
    "I beat my depression on my own, so you can beat yours too.",
    "If I could get back to work after everything I went through, so can you.",
    "I got through it by pushing myself, and you can do the same if you try.",
    "I turned my life around in six months, so you can do it too if you want it as much as I did.",
    "Look at me now, if I can do it anyone can.",
    "I never let it stop me, so you should not let it stop you either.",
    "I stopped drinking overnight, so you should be able to as well.",
    "I was worse than you and I recovered, so you have no excuse.",
    "When I was where you are I just got on with it and beat it, so you can too.",
    "I am proof that you can beat this if you work hard like I did.",
    "I overcame my anxiety completely, so you will too if you follow what I did.",
)

DOWNWARD: tuple[str, ...] = (
    "At least you have a job, some people have nothing.",
    "At least you still have your family around you.",
    "Some people in the ward were far worse off than you are.",
    "Things could be a lot worse, at least you have a home.",
    "At least you are not as ill as some of the people I have met.",
    "Some of my clients have much bigger problems than yours.",
)

NEUTRAL: tuple[str, ...] = (
    "Shall we look at the plan we made last time?",
    "Let's book the next session for Thursday.",
    "How has your week been since we last met?",
    "Do you want a glass of water before we start?",
    "We have about twenty minutes left today.",
    "Can you tell me a bit more about what happened on Monday?",
    "I will send you the details of the walking group.",
    "What would you like to focus on today?",
    "The appointment with the housing office is at ten.",
    "Let's write that down so we remember it.",
)

#: What the participant says between the worker's turns (not scored).
PARTICIPANT: tuple[str, ...] = (
    "It has been a hard week, to be honest.",
    "I keep thinking I should be coping better.",
    "Some days are fine and then it all comes back.",
    "I did manage to go for a walk on Tuesday.",
    "I am not sleeping much.",
    "Yes, that would help.",
    "I do not really know where to start.",
    "Thanks, that is good to hear.",
)
